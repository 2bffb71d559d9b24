// Pushes real Go runtime profiles (runtime/pprof: cpu, heap, mutex, goroutine) to a Pyroscope
// /ingest URL the way pyroscope-go's upstream/remote does: a multipart form with the field
// `profile` (filename profile.pprof) and, for heap, mutex and goroutine, `sample_type_config`
// (filename sample_type_config.json, pyroscope-go's own configs); from/until in ns; name
// app{tags}; Basic auth and X-Scope-OrgID. Only the standard library (no module download):
// capture.py runs it against its capture server to refresh the fixtures.
// usage: go run . URL
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"
)

type sampleType struct {
	Units       string `json:"units,omitempty"`
	Aggregation string `json:"aggregation,omitempty"`
	DisplayName string `json:"display-name,omitempty"`
	Sampled     bool   `json:"sampled,omitempty"`
	Cumulative  bool   `json:"cumulative,omitempty"`
}

var sink []byte

//go:noinline
func apertureGoBurn(d time.Duration) int {
	end := time.Now().Add(d)
	x := 0
	for time.Now().Before(end) {
		for i := 0; i < 100000; i++ {
			x = (x*31 + i) % 1000003
		}
	}
	return x
}

//go:noinline
func apertureGoAlloc() {
	for i := 0; i < 2000; i++ {
		sink = make([]byte, 4096)
	}
}

//go:noinline
func apertureGoContend() {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				mu.Lock()
				time.Sleep(50 * time.Microsecond)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func upload(base, name string, from, until time.Time, spy string, rate int, units, agg string,
	prof []byte, cfg map[string]*sampleType) error {
	body := &bytes.Buffer{}
	w := multipart.NewWriter(body)
	fw, err := w.CreateFormFile("profile", "profile.pprof")
	if err != nil {
		return err
	}
	fw.Write(prof)
	if cfg != nil {
		fw, err = w.CreateFormFile("sample_type_config", "sample_type_config.json")
		if err != nil {
			return err
		}
		b, _ := json.Marshal(cfg)
		fw.Write(b)
	}
	w.Close()
	u, _ := url.Parse(base + "/ingest")
	q := u.Query()
	q.Set("name", name)
	q.Set("from", strconv.FormatInt(from.UnixNano(), 10))
	q.Set("until", strconv.FormatInt(until.UnixNano(), 10))
	q.Set("spyName", spy)
	q.Set("sampleRate", strconv.Itoa(rate))
	q.Set("units", units)
	q.Set("aggregationType", agg)
	u.RawQuery = q.Encode()
	req, err := http.NewRequest("POST", u.String(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.SetBasicAuth("gouser", "gopass")
	req.Header.Set("X-Scope-OrgID", "team-go")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func main() {
	base := os.Args[1]
	name := "goapp{env=test,k8s.pod=pod-1}"
	runtime.SetMutexProfileFraction(1)
	start := time.Now()
	cpu := &bytes.Buffer{}
	pprof.StartCPUProfile(cpu)
	apertureGoBurn(1200 * time.Millisecond)
	apertureGoAlloc()
	apertureGoContend()
	pprof.StopCPUProfile()
	end := time.Now()
	check := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	check(upload(base, name, start, end, "gospy", 100, "samples", "sum", cpu.Bytes(), nil))
	runtime.GC()
	heap := &bytes.Buffer{}
	check(pprof.Lookup("heap").WriteTo(heap, 0))
	check(upload(base, name, start, end, "gospy", 100, "", "", heap.Bytes(), map[string]*sampleType{
		"alloc_objects": {Units: "objects"}, "alloc_space": {Units: "bytes"},
		"inuse_space": {Units: "bytes", Aggregation: "average"},
		"inuse_objects": {Units: "objects", Aggregation: "average"}}))
	mutex := &bytes.Buffer{}
	check(pprof.Lookup("mutex").WriteTo(mutex, 0))
	check(upload(base, name, start, end, "gospy", 0, "", "", mutex.Bytes(), map[string]*sampleType{
		"contentions": {DisplayName: "mutex_count", Units: "lock_samples"},
		"delay":       {DisplayName: "mutex_duration", Units: "lock_nanoseconds"}}))
	gr := &bytes.Buffer{}
	check(pprof.Lookup("goroutine").WriteTo(gr, 0))
	check(upload(base, name, start, end, "gospy", 0, "goroutines", "average", gr.Bytes(),
		map[string]*sampleType{"goroutine": {DisplayName: "goroutines", Units: "goroutines",
			Aggregation: "average"}}))
}
