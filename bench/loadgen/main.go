// Command loadgen drives an HTTPS endpoint with POSTs of one fixed body over HTTP/1.1 keep-alive
// connections, as kube-apiserver calls admission webhooks, and prints one JSON line of figures:
// requests, errors, requests per second and latency percentiles in milliseconds.
//
// Standard library only, so `go build` works on a fresh machine without a module download.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Errors      int64   `json:"errors"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"rps"`
	P50         float64 `json:"p50_ms"`
	P90         float64 `json:"p90_ms"`
	P99         float64 `json:"p99_ms"`
	Max         float64 `json:"max_ms"`
	FirstError  string  `json:"first_error,omitempty"`
}

func main() {
	url := flag.String("url", "", "endpoint URL (https://127.0.0.1:PORT/path)")
	bodyFile := flag.String("body", "", "file holding the request body")
	caFile := flag.String("cacert", "", "PEM CA bundle to verify the server with")
	concurrency := flag.Int("c", 16, "concurrent connections (one request in flight on each)")
	duration := flag.Duration("d", 5*time.Second, "measured duration")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up before the measured duration")
	expect := flag.String("expect", "", "substring every response body must contain")
	flag.Parse()
	if *url == "" || *bodyFile == "" {
		fmt.Fprintln(os.Stderr, "usage: loadgen -url URL -body FILE [-cacert FILE] [-c N] [-d 5s]")
		os.Exit(2)
	}
	body, err := os.ReadFile(*bodyFile)
	check(err)
	tlsConfig := &tls.Config{}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		check(err)
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			check(fmt.Errorf("no certificate in %s", *caFile))
		}
		tlsConfig.RootCAs = pool
	}
	transport := &http.Transport{
		TLSClientConfig:     tlsConfig,
		MaxIdleConns:        *concurrency,
		MaxIdleConnsPerHost: *concurrency,
		MaxConnsPerHost:     *concurrency,
		IdleConnTimeout:     90 * time.Second,
		// kube-apiserver calls webhooks over HTTP/1.1: a non-nil empty map turns HTTP/2 off.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	expected := []byte(*expect)

	var measuring atomic.Bool
	var stop atomic.Bool
	var errors atomic.Int64
	var firstError atomic.Value
	latencies := make([][]time.Duration, *concurrency)
	var wg sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			own := make([]time.Duration, 0, 1<<16)
			for !stop.Load() {
				start := time.Now()
				req, _ := http.NewRequest(http.MethodPost, *url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				var got []byte
				if err == nil {
					got, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
					if err == nil && len(expected) > 0 && !bytes.Contains(got, expected) {
						err = fmt.Errorf("unexpected body %.80q", got)
					}
				}
				if !measuring.Load() {
					continue
				}
				if err != nil {
					errors.Add(1)
					firstError.CompareAndSwap(nil, err.Error())
					continue
				}
				own = append(own, time.Since(start))
			}
			latencies[w] = own
		}(w)
	}
	time.Sleep(*warmup)
	measuring.Store(true)
	began := time.Now()
	time.Sleep(*duration)
	measuring.Store(false)
	elapsed := time.Since(began)
	stop.Store(true)
	wg.Wait()

	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := result{Concurrency: *concurrency, Requests: len(all), Errors: errors.Load(), Seconds: elapsed.Seconds()}
	r.RPS = float64(len(all)) / elapsed.Seconds()
	if len(all) > 0 {
		r.P50 = ms(all[len(all)*50/100])
		r.P90 = ms(all[len(all)*90/100])
		r.P99 = ms(all[len(all)*99/100])
		r.Max = ms(all[len(all)-1])
	}
	if e, ok := firstError.Load().(string); ok {
		r.FirstError = e
	}
	check(json.NewEncoder(os.Stdout).Encode(r))
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
