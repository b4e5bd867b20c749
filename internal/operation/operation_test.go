package operation

import (
	"errors"
	"fmt"
	"testing"
)

func TestFailureNamesTheStepOnce(t *testing.T) {
	t.Parallel()
	cause := fmt.Errorf("%s: %w", StepPresenting, errors.New("server answered REFUSED"))
	op := Operation{FailedStep: StepPresenting, Error: StepError(StepPresenting, cause)}
	if op.Error != "server answered REFUSED" {
		t.Errorf("StepError = %q, want the cause without the step", op.Error)
	}
	if got, want := op.Failure(), "presenting DNS records: server answered REFUSED"; got != want {
		t.Errorf("Failure = %q, want %q", got, want)
	}
	other := errors.New("waiting for DNS propagation: ns1 has no TXT")
	if got := StepError(StepPropagation, other); got != other.Error() {
		t.Errorf("StepError changed an error that does not start with its step: %q", got)
	}
	for _, c := range []struct {
		op   Operation
		want string
	}{
		{Operation{}, ""},
		{Operation{Error: "boom"}, "boom"},
		{Operation{FailedStep: StepOrdering}, "ordering"},
	} {
		if got := c.op.Failure(); got != c.want {
			t.Errorf("Failure(%+v) = %q, want %q", c.op, got, c.want)
		}
	}
}
