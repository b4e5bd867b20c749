package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadHousekeepingAndRescue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		doc          string
		wantHK       Housekeeping
		wantRescue   time.Duration
		wantGrace    time.Duration
		wantProblems string
	}{
		{
			name:       "defaults",
			doc:        "dataDir: /d\n",
			wantHK:     Housekeeping{Interval: time.Hour, OperationRetention: 720 * time.Hour, JobRetention: 24 * time.Hour},
			wantRescue: time.Minute,
			wantGrace:  20 * time.Second,
		},
		{
			name: "set",
			doc: `dataDir: /d
jobs:
  timeout: 30m
  rescueAfter: 20s
  shutdownGrace: 45s
housekeeping:
  interval: 10m
  operationRetention: 2160h
  jobRetention: 1h
`,
			wantHK:     Housekeeping{Interval: 10 * time.Minute, OperationRetention: 2160 * time.Hour, JobRetention: time.Hour},
			wantRescue: 20 * time.Second,
			wantGrace:  45 * time.Second,
		},
		{
			name:         "unknown key",
			doc:          "dataDir: /d\nhousekeeping:\n  retention: 1h\n",
			wantProblems: "retention",
		},
		{
			name:         "rescueAfter below the minimum",
			doc:          "dataDir: /d\njobs:\n  rescueAfter: 1s\n",
			wantProblems: "jobs.rescueAfter: must be at least 2s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := load([]byte(tt.doc), nil)
			if tt.wantProblems != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantProblems) {
					t.Fatalf("load() error = %v, want one mentioning %q", err, tt.wantProblems)
				}
				return
			}
			if err != nil {
				t.Fatalf("load() error = %v", err)
			}
			if diff := cmp.Diff(tt.wantHK, got.Housekeeping); diff != "" {
				t.Errorf("Housekeeping mismatch (-want +got):\n%s", diff)
			}
			if got.Jobs.RescueAfter != tt.wantRescue || got.Jobs.ShutdownGrace != tt.wantGrace {
				t.Errorf("Jobs.RescueAfter, ShutdownGrace = %v, %v; want %v, %v",
					got.Jobs.RescueAfter, got.Jobs.ShutdownGrace, tt.wantRescue, tt.wantGrace)
			}
		})
	}
}
