//go:build tools

// Package tools pins kubeconform (built by ../build.sh with
// `go build github.com/yannh/kubeconform/cmd/kubeconform`) in go.mod/go.sum.
package tools

import _ "github.com/yannh/kubeconform/pkg/validator"
