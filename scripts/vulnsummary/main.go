// Command vulnsummary reads the JSON stream of `govulncheck -format json`
// on standard input, prints one line per vulnerability and exits 1 when a
// finding is one we can fix. It is run by scripts/vulncheck:
//
//	govulncheck -format json ./... | go run ./scripts/vulnsummary -name .
//
// Policy: a finding fails the check when govulncheck found the vulnerable
// symbol reachable from our code (symbol level, govulncheck's default
// meaning of "affected") and the database names a fixed version: for a
// module, upgrade it; for the Go standard library, move go.mod's toolchain
// directive (go fetches that toolchain through the module proxy). Reachable
// findings with no fixed version are reported and do not fail, as there is
// nothing to upgrade to. Vulnerabilities in packages we import but whose
// vulnerable symbols we do not call, and in modules we only require, are
// counted.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// message is one value of govulncheck's JSON stream
// (golang.org/x/vuln/internal/govulncheck.Message); only the parts read here.
type message struct {
	Config *struct {
		ScannerVersion string     `json:"scanner_version"`
		DB             string     `json:"db"`
		DBLastModified *time.Time `json:"db_last_modified"`
		GoVersion      string     `json:"go_version"`
		ScanLevel      string     `json:"scan_level"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
		} `json:"trace"`
	} `json:"finding"`
}

// Levels of a finding, from least to most specific.
const (
	levelModule  = iota + 1 // a required module is affected
	levelPackage            // an imported package is affected
	levelSymbol             // a vulnerable symbol is reachable
)

type vuln struct {
	id, summary   string
	module        string
	version       string
	fixed         string
	level         int
	reachedByPath map[string]bool // packages holding reached symbols
}

func main() {
	name := flag.String("name", ".", "name of the scanned module, for the output")
	flag.Parse()
	failed, err := summarize(os.Stdin, os.Stdout, *name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulnsummary:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

func summarize(r io.Reader, w io.Writer, name string) (failed bool, err error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	vulns := map[string]*vuln{}
	summaries := map[string]string{}
	sawConfig := false
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return false, fmt.Errorf("reading govulncheck JSON: %w", err)
		}
		switch {
		case m.Config != nil:
			sawConfig = true
			c := m.Config
			when := "unknown"
			if c.DBLastModified != nil && !c.DBLastModified.IsZero() {
				when = c.DBLastModified.UTC().Format("2006-01-02 15:04 MST")
			}
			fmt.Fprintf(w, "%s: govulncheck %s, %s, %s level, database %s (last modified %s)\n",
				name, c.ScannerVersion, c.GoVersion, c.ScanLevel, c.DB, when)
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil:
			f := m.Finding
			if len(f.Trace) == 0 {
				return false, fmt.Errorf("finding %s has no trace", f.OSV)
			}
			top := f.Trace[0]
			level := levelModule
			switch {
			case top.Function != "":
				level = levelSymbol
			case top.Package != "":
				level = levelPackage
			}
			key := f.OSV + " " + top.Module
			v := vulns[key]
			if v == nil {
				v = &vuln{id: f.OSV, module: top.Module, version: top.Version, reachedByPath: map[string]bool{}}
				vulns[key] = v
			}
			if level > v.level {
				v.level = level
			}
			if f.FixedVersion != "" {
				v.fixed = f.FixedVersion
			}
			if level == levelSymbol {
				v.reachedByPath[top.Package] = true
			}
		}
	}
	if !sawConfig {
		return false, errors.New("no config message: is this govulncheck -format json output?")
	}

	list := make([]*vuln, 0, len(vulns))
	for _, v := range vulns {
		v.summary = summaries[v.id]
		list = append(list, v)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].level != list[j].level {
			return list[i].level > list[j].level
		}
		return list[i].id < list[j].id
	})

	var count [levelSymbol + 1]int
	var fixable, stdlib, noFix int
	for _, v := range list {
		count[v.level]++
		fixed := "no fixed version"
		if v.fixed != "" {
			fixed = "fixed in " + v.fixed
		}
		verdict := ""
		switch {
		case v.level != levelSymbol:
			verdict = "not called"
			if v.level == levelModule {
				verdict = "required module only"
			}
		case v.fixed == "":
			verdict = "REACHABLE, no fix published (reported, not failed)"
			noFix++
		case v.module == "stdlib":
			verdict = "REACHABLE and FIXABLE: move go.mod's toolchain to go" + strings.TrimPrefix(v.fixed, "v")
			fixable++
		default:
			verdict = "REACHABLE and FIXABLE: upgrade " + v.module + " to " + v.fixed
			fixable++
		}
		if v.level == levelSymbol && v.module == "stdlib" {
			stdlib++
		}
		where := ""
		if len(v.reachedByPath) > 0 {
			pkgs := make([]string, 0, len(v.reachedByPath))
			for p := range v.reachedByPath {
				pkgs = append(pkgs, p)
			}
			sort.Strings(pkgs)
			where = " [" + strings.Join(pkgs, ", ") + "]"
		}
		fmt.Fprintf(w, "  %s  %s@%s, %s: %s%s — %s\n", v.id, v.module, v.version, fixed, verdict, where, v.summary)
	}
	fmt.Fprintf(w, "%s: %d vulnerabilities known for what it builds with: %d reachable (%d standard library, %d without a fix, %d fixable), %d in imported packages but not called, %d in required modules only\n",
		name, len(list), count[levelSymbol], stdlib, noFix, fixable, count[levelPackage], count[levelModule])
	return fixable > 0, nil
}
