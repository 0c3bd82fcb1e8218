//go:build tools

// Package tools pins staticcheck, which make test runs beside go vet.
package tools

import _ "honnef.co/go/tools/cmd/staticcheck"
