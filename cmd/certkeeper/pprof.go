package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// envPprof names the loopback address on which serve exposes Go's profiler
// (net/http/pprof), for the benchmarks and for investigating a slow
// service. It is off unless set, it is a separate listener from the API
// (so that no reverse proxy in front of the API can reach it), it has no
// authentication and so accepts only a loopback address: profiles show
// request paths and timings, never keys, but they are not for the network.
const envPprof = "CERTKEEPER_DEBUG_PPROF"

// startPprof serves the profiler on the address in CERTKEEPER_DEBUG_PPROF
// until ctx is done; unset, it does nothing.
func startPprof(ctx context.Context, logger *slog.Logger) error {
	addr := os.Getenv(envPprof)
	if addr == "" {
		return nil
	}
	if err := checkLoopback(addr); err != nil {
		return fmt.Errorf("%s: %w", envPprof, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", envPprof, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	logger.Warn("the Go profiler is served (CERTKEEPER_DEBUG_PPROF); unset it outside investigations", "addr", l.Addr().String())
	return nil
}

// checkLoopback accepts host:port whose host is a loopback IP address or
// "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("the profiler listens only on a loopback address such as 127.0.0.1:6060, not " + addr)
}
