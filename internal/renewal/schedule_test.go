package renewal

import (
	"fmt"
	"testing"
	"time"
)

const day = 24 * time.Hour

var issued = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func TestLifetime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		policy   Policy
		lifetime time.Duration
		// nominal is the moment before jitter; the jitter moves it earlier
		// by at most spread.
		nominal time.Duration
		spread  time.Duration
	}{
		{"90 days, default 30 days", Policy{}, 90 * day, 60 * day, day},
		{"90 days, 30 days", Policy{Days: 30}, 90 * day, 60 * day, day},
		{"90 days, 33%", Policy{Percent: 33}, 90 * day, 90*day - 90*day*33/100, day},
		{"45 days, 10 days", Policy{Days: 10}, 45 * day, 35 * day, day},
		{"45 days, 30 days is capped at half", Policy{Days: 30}, 45 * day, 45 * day / 2, day},
		{"6 days, default: half", Policy{}, 6 * day, 3 * day, 6 * day / 20},
		{"10 days is short-lived", Policy{Days: 2}, 10 * day, 5 * day, 10 * day / 20},
		{"6 days, 20%", Policy{Percent: 20}, 6 * day, 6*day - 6*day/5, 6 * day / 20},
		{"11 days is not short-lived", Policy{Days: 2}, 11 * day, 9 * day, 11 * day / 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			notAfter := issued.Add(tt.lifetime)
			nominal := issued.Add(tt.nominal)
			for i := range 200 {
				seed := fmt.Sprintf("version-%d", i)
				got := tt.policy.Lifetime(issued, notAfter, seed)
				if got.After(nominal) || got.Before(nominal.Add(-tt.spread)) {
					t.Fatalf("Lifetime(seed %s) = %v, want within %v before %v", seed, got, tt.spread, nominal)
				}
				if again := tt.policy.Lifetime(issued, notAfter, seed); !again.Equal(got) {
					t.Fatalf("Lifetime is not deterministic: %v then %v", got, again)
				}
			}
		})
	}
	t.Run("jitter spreads", func(t *testing.T) {
		t.Parallel()
		seen := map[time.Time]bool{}
		for i := range 50 {
			seen[Policy{}.Lifetime(issued, issued.Add(90*day), fmt.Sprint(i))] = true
		}
		if len(seen) < 45 {
			t.Errorf("50 versions got %d distinct moments; want them spread", len(seen))
		}
	})
	t.Run("no lifetime", func(t *testing.T) {
		t.Parallel()
		if got := (Policy{}).Lifetime(issued, issued, "x"); !got.Equal(issued) {
			t.Errorf("Lifetime of an empty validity = %v, want its end", got)
		}
	})
}

func TestInWindow(t *testing.T) {
	t.Parallel()
	start, end := issued.Add(59*day), issued.Add(61*day)
	var sum time.Duration
	const n = 2000
	for i := range n {
		seed := fmt.Sprintf("v%d", i)
		got := InWindow(start, end, seed)
		if got.Before(start) || !got.Before(end) {
			t.Fatalf("InWindow(%s) = %v, outside [%v, %v)", seed, got, start, end)
		}
		if !InWindow(start, end, seed).Equal(got) {
			t.Fatal("InWindow is not deterministic for one seed")
		}
		sum += got.Sub(start)
	}
	// Uniform over two days: the mean is near one day.
	if mean := sum / n; mean < 22*time.Hour || mean > 26*time.Hour {
		t.Errorf("mean offset %v, want about 24h for a uniform pick", mean)
	}
	if got := InWindow(end, start, "x"); !got.Equal(end) {
		t.Errorf("InWindow of an empty window = %v, want its start", got)
	}
}

func TestLatest(t *testing.T) {
	t.Parallel()
	notAfter := issued.Add(90 * day)
	limit := issued.Add(81 * day)
	tests := []struct {
		at, want time.Time
	}{
		{issued.Add(60 * day), issued.Add(60 * day)},
		{issued.Add(89 * day), limit},
		{notAfter.Add(day), limit},
	}
	for _, tt := range tests {
		if got := Latest(tt.at, issued, notAfter); !got.Equal(tt.want) {
			t.Errorf("Latest(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
}

func TestNextARICheck(t *testing.T) {
	t.Parallel()
	now := issued
	tests := []struct {
		retryAfter, want time.Duration
	}{
		{0, 6 * time.Hour},
		{time.Second, time.Minute},
		{time.Minute, time.Minute},
		{3 * time.Hour, 3 * time.Hour},
		{2 * day, day},
	}
	for _, tt := range tests {
		if got := NextARICheck(now, tt.retryAfter).Sub(now); got != tt.want {
			t.Errorf("NextARICheck(Retry-After %v) = now+%v, want now+%v", tt.retryAfter, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, 80 * time.Minute,
		160 * time.Minute, 320 * time.Minute, 6 * time.Hour, 6 * time.Hour}
	for i, w := range want {
		if got := Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := Backoff(1000); got != MaxBackoff {
		t.Errorf("Backoff(1000) = %v", got)
	}
	for failures, want := range map[int]string{1: StatusFailed, 2: StatusFailed, 3: StatusNeedsAttention, 9: StatusNeedsAttention} {
		if got := FailedStatus(failures); got != want {
			t.Errorf("FailedStatus(%d) = %s, want %s", failures, got, want)
		}
	}
}

func TestEarliest(t *testing.T) {
	t.Parallel()
	a, b := issued, issued.Add(time.Hour)
	if got := Earliest(time.Time{}, b, a, time.Time{}); !got.Equal(a) {
		t.Errorf("Earliest = %v, want %v", got, a)
	}
	if got := Earliest(); !got.IsZero() {
		t.Errorf("Earliest() = %v, want zero", got)
	}
}

func TestExpiringAt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		renewAt, notAfter time.Time
		want              time.Time
	}{
		{"90 days: a week before expiry", issued.Add(60 * day), issued.Add(90 * day), issued.Add(83 * day)},
		{"6 days: half way from the planned renewal", issued.Add(3 * day), issued.Add(6 * day), issued.Add(4*day + 12*time.Hour)},
		{"no plan: a week before expiry", time.Time{}, issued.Add(6 * day), issued.Add(-day)},
	}
	for _, tt := range tests {
		if got := ExpiringAt(tt.renewAt, tt.notAfter, 7*day); !got.Equal(tt.want) {
			t.Errorf("%s: ExpiringAt = %v, want %v", tt.name, got, tt.want)
		}
	}
}
