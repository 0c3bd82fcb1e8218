// Command printversion prints version.String, for the stamp's test.
package main

import (
	"fmt"

	"github.com/staticroute/staticroute/internal/version"
)

func main() { fmt.Println(version.String("printversion")) }
