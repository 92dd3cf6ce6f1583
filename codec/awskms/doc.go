// Package awskms is a payloadkit key provider backed by AWS KMS (aws-sdk-go-v2).
package awskms
