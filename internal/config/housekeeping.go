package config

import "time"

// Housekeeping defaults.
const (
	DefaultHousekeepingInterval = time.Hour
	DefaultOperationRetention   = 30 * 24 * time.Hour
	DefaultJobRetention         = 24 * time.Hour
	DefaultRescueAfter          = time.Minute
	DefaultShutdownGrace        = 20 * time.Second

	// minRescueAfter keeps the heartbeat of running jobs (a quarter of
	// jobs.rescueAfter) from hammering the database.
	minRescueAfter = 2 * time.Second
)

// Housekeeping is the periodic clean-up. With several replicas it runs on
// one of them at a time, the job queue's elected leader.
type Housekeeping struct {
	// Interval is how often it runs; default 1h.
	Interval time.Duration `yaml:"interval"`
	// OperationRetention is how long a finished operation stays readable at
	// /api/state and /api/operations; default 720h (30 days). Certificate
	// versions are never pruned.
	OperationRetention time.Duration `yaml:"operationRetention"`
	// JobRetention is how long finished jobs stay in the job queue's own
	// tables; default 24h.
	JobRetention time.Duration `yaml:"jobRetention"`
}

func defaultHousekeeping() Housekeeping {
	return Housekeeping{
		Interval:           DefaultHousekeepingInterval,
		OperationRetention: DefaultOperationRetention,
		JobRetention:       DefaultJobRetention,
	}
}

func (h *Housekeeping) validate(p *problems) {
	if h.Interval <= 0 {
		p.add("housekeeping.interval", "must be positive")
	}
	if h.OperationRetention <= 0 {
		p.add("housekeeping.operationRetention", "must be positive")
	}
	if h.JobRetention <= 0 {
		p.add("housekeeping.jobRetention", "must be positive")
	}
}
