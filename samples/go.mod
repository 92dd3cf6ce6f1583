module github.com/payloadkit/payloadkit/samples

go 1.26.0

replace github.com/payloadkit/payloadkit => ../
