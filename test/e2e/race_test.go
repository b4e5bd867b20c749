//go:build race

package e2e

// raceEnabled builds the certkeeper binary with -race when the tests run
// with -race, so that data races in the real process fail the tests too.
const raceEnabled = true
