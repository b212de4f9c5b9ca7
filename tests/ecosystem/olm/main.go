// Command olm-validate runs the Operator Framework's own bundle validators
// (github.com/operator-framework/api/pkg/validation) on a bundle directory:
// the default ones `operator-sdk bundle validate` always runs (bundle, CSV,
// CRD) and the optional ones of `--select-optional suite=operatorframework`:
// OperatorHub (as operatorhub/v2 with standardcapabilities and
// standardcategories, which the deprecated "operatorhub" validator names as
// its equivalent), good practices and deprecated APIs, plus the object
// validator (PodDisruptionBudgets and the like).
//
// Not run: the "multiarch" validator pulls every image with docker/podman to
// read its platforms, which needs a container engine and the published image;
// the CSV's operatorframework.io/arch.* labels are checked against the
// Containerfile's build instead.
//
// Usage: olm-validate [-k8s-version 1.34] <bundle dir>
//
// It prints one JSON line per finding ({"validator","severity","type","field","detail","object"})
// and a summary line, and exits 1 when any error is found (warnings do not fail;
// the caller decides which warnings it accepts).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	apimanifests "github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	apierrors "github.com/operator-framework/api/pkg/validation/errors"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
)

type finding struct {
	Validator string `json:"validator"`
	Severity  string `json:"severity"`
	Type      string `json:"type"`
	Field     string `json:"field,omitempty"`
	Detail    string `json:"detail"`
	Object    string `json:"object,omitempty"`
}

func main() {
	k8sVersion := flag.String("k8s-version", "", "Kubernetes version the deprecated-API and OperatorHub checks test against")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: olm-validate [-k8s-version X.Y] <bundle dir>")
		os.Exit(2)
	}
	bundle, err := apimanifests.GetBundleFromDir(flag.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "olm-validate: cannot load the bundle: %v\n", err)
		os.Exit(1)
	}
	// What `operator-sdk bundle validate` passes: the bundle's objects, the bundle
	// itself, and the optional values.
	objs := bundle.ObjectsToValidate()
	for _, obj := range bundle.Objects {
		objs = append(objs, obj)
	}
	optional := map[string]string{}
	if *k8sVersion != "" {
		optional["k8s-version"] = *k8sVersion
	}
	objs = append(objs, optional)

	suites := []struct {
		name string
		v    interfaces.Validator
	}{
		{"csv", validation.ClusterServiceVersionValidator},
		{"crd", validation.CustomResourceDefinitionValidator},
		{"bundle", validation.BundleValidator},
		{"operatorhubv2", validation.OperatorHubV2Validator},
		{"standardcapabilities", validation.StandardCapabilitiesValidator},
		{"standardcategories", validation.StandardCategoriesValidator},
		{"good-practices", validation.GoodPracticesValidator},
		{"alpha-deprecated-apis", validation.AlphaDeprecatedAPIsValidator},
		{"object", validation.ObjectValidator},
	}
	out := json.NewEncoder(os.Stdout)
	errorsFound, warnings := 0, 0
	for _, suite := range suites {
		for _, result := range suite.v.Validate(objs...) {
			for _, list := range [][]apierrors.Error{result.Errors, result.Warnings} {
				for _, e := range list {
					if e.Level == apierrors.LevelError {
						errorsFound++
					} else {
						warnings++
					}
					_ = out.Encode(finding{
						Validator: suite.name,
						Severity:  string(e.Level),
						Type:      string(e.Type),
						Field:     e.Field,
						Detail:    e.Detail,
						Object:    result.Name,
					})
				}
			}
		}
	}
	fmt.Fprintf(os.Stderr, "olm-validate: %d validators, %d errors, %d warnings\n", len(suites), errorsFound, warnings)
	if errorsFound > 0 {
		os.Exit(1)
	}
}
