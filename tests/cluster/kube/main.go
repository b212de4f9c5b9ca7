// Command kube is a real Kubernetes control plane for quay-bridge's end-to-end suite: the published
// kube-apiserver and kube-controller-manager from k8s.io/kubernetes, linked into one binary together
// with an embedded etcd, so a test run needs no container runtime, no downloads beyond the Go module
// proxy and no second etcd binary.
//
// Usage:
//
//	kube kube-apiserver [--embedded-etcd-dir=DIR] [--exit-with-parent] [kube-apiserver flags...]
//	kube kube-controller-manager [--exit-with-parent] [kube-controller-manager flags...]
//	kube version
//
// With --embedded-etcd-dir an etcd member is started on free 127.0.0.1 ports with its data in DIR
// and --etcd-servers is added to the apiserver's flags. With --exit-with-parent the process exits
// when its parent goes away, so a crashed test run does not leave a control plane behind.
package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"
	_ "time/tzdata" // CronJob time zones, as in the upstream binaries

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as in the upstream binaries
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as in the upstream binaries
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as in the upstream binaries
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: %s kube-apiserver|kube-controller-manager|version [flags...]", os.Args[0]))
	}
	mode, args := os.Args[1], os.Args[2:]
	// client-go derives the User-Agent, and with it the managedFields manager of every write, from
	// argv[0]; name it like the upstream binary so managedFields read as on a real cluster.
	os.Args[0] = mode
	args, exitWithParent := takeBool(args, "--exit-with-parent")
	if exitWithParent {
		go watchParent(os.Getppid())
	}
	switch mode {
	case "kube-apiserver":
		os.Exit(runAPIServer(args))
	case "kube-controller-manager":
		os.Exit(runCommand(controllermanager.NewControllerManagerCommand(), args))
	case "version":
		fmt.Println(kubernetesVersion())
	default:
		fail(fmt.Errorf("unknown mode %q: want kube-apiserver, kube-controller-manager or version", mode))
	}
}

func runAPIServer(args []string) int {
	args, etcdDir := takeValue(args, "--embedded-etcd-dir")
	if etcdDir != "" {
		etcd, endpoint, err := startEtcd(etcdDir)
		if err != nil {
			fail(fmt.Errorf("embedded etcd: %w", err))
		}
		defer etcd.Close()
		args = append(args, "--etcd-servers="+endpoint)
	}
	return runCommand(apiserver.NewAPIServerCommand(), args)
}

func runCommand(command *cobra.Command, args []string) int {
	command.SetArgs(args)
	return cli.Run(command)
}

// startEtcd runs a single-member etcd on loopback. Fsync is off: the data lives only as long as one
// test run, and on a shared CI disk fsync latency would dominate every write.
func startEtcd(dir string) (*embed.Etcd, string, error) {
	clientURL, err := freeLoopbackURL()
	if err != nil {
		return nil, "", err
	}
	peerURL, err := freeLoopbackURL()
	if err != nil {
		return nil, "", err
	}
	cfg := embed.NewConfig()
	cfg.Name = "e2e"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{*clientURL}
	cfg.AdvertiseClientUrls = []url.URL{*clientURL}
	cfg.ListenPeerUrls = []url.URL{*peerURL}
	cfg.AdvertisePeerUrls = []url.URL{*peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"stderr"}
	etcd, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-etcd.Server.ReadyNotify():
		return etcd, clientURL.String(), nil
	case err := <-etcd.Err():
		etcd.Close()
		return nil, "", err
	case <-time.After(60 * time.Second):
		etcd.Close()
		return nil, "", fmt.Errorf("not ready after 60s")
	}
}

// freeLoopbackURL asks the kernel for a free port. The port is released before etcd binds it; the
// window is small and a collision fails the start loudly rather than silently.
func freeLoopbackURL() (*url.URL, error) {
	listener, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer listener.Close()
	return url.Parse("http://" + listener.Addr().String())
}

// watchParent exits once the process that started us is gone (we are then re-parented). Polling is
// used instead of PR_SET_PDEATHSIG because that fires when the spawning *thread* exits, and Deno
// spawns children from pool threads that come and go.
func watchParent(parent int) {
	for range time.Tick(500 * time.Millisecond) {
		if os.Getppid() != parent {
			fmt.Fprintln(os.Stderr, "kube: parent process exited; stopping")
			os.Exit(3)
		}
	}
}

func takeBool(args []string, name string) ([]string, bool) {
	rest := make([]string, 0, len(args))
	found := false
	for _, arg := range args {
		if arg == name || arg == name+"=true" {
			found = true
			continue
		}
		rest = append(rest, arg)
	}
	return rest, found
}

func takeValue(args []string, name string) ([]string, string) {
	rest := make([]string, 0, len(args))
	value := ""
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case strings.HasPrefix(arg, name+"="):
			value = strings.TrimPrefix(arg, name+"=")
		case arg == name && i+1 < len(args):
			value = args[i+1]
			i++
		default:
			rest = append(rest, arg)
		}
	}
	return rest, value
}

func kubernetesVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == "k8s.io/kubernetes" {
			return dep.Version
		}
	}
	return "unknown"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kube:", err)
	os.Exit(2)
}
