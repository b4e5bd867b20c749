package issuer

import (
	"context"
	"sync"
	"testing"

	"github.com/certkeeper/certkeeper/internal/testenv"
)

// lockingAccounts is a memAccounts shared by several Issuers, as replicas
// share a database, with the lock an AccountLocker gives them.
type lockingAccounts struct {
	*memAccounts
	lock  sync.Mutex
	locks int
}

var _ AccountLocker = (*lockingAccounts)(nil)

func (l *lockingAccounts) LockAccount(ctx context.Context, _ string, fn func(context.Context) error) error {
	l.lock.Lock()
	defer l.lock.Unlock()
	l.locks++
	return fn(ctx)
}

// barrierAccounts holds the first n Account calls until all n arrived, so
// that n Issuers all find the store empty before any of them registers.
type barrierAccounts struct {
	AccountStore
	mu      sync.Mutex
	n       int
	arrived chan struct{}
}

func (b *barrierAccounts) Account(ctx context.Context, dir string) (Account, error) {
	b.mu.Lock()
	b.n--
	wait := b.n >= 0
	if b.n == 0 {
		close(b.arrived)
	}
	b.mu.Unlock()
	if wait {
		select {
		case <-b.arrived:
		case <-ctx.Done():
			return Account{}, ctx.Err()
		}
	}
	return b.AccountStore.Account(ctx, dir)
}

// lockingBarrier is a barrierAccounts with the lock of its store.
type lockingBarrier struct {
	*barrierAccounts
	locker AccountLocker
}

func (l *lockingBarrier) LockAccount(ctx context.Context, dir string, fn func(context.Context) error) error {
	return l.locker.LockAccount(ctx, dir, fn)
}

// TestRegistrationAcrossIssuers starts several Issuers on one store at once,
// as replicas starting together on an empty database: one account is
// registered, and every Issuer uses it.
func TestRegistrationAcrossIssuers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.PebbleOptions{})
	const replicas = 4
	tests := []struct {
		name      string
		locking   bool
		wantSaves int
	}{
		// Every Issuer first finds no account. Without the lock each one
		// registers its own: the reason the lock exists, and proof that
		// the test can fail.
		{"without lock", false, replicas},
		{"with lock", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := newMemAccounts()
			barrier := &barrierAccounts{AccountStore: mem, n: replicas, arrived: make(chan struct{})}
			var accounts AccountStore = barrier
			if tt.locking {
				accounts = &lockingBarrier{barrierAccounts: barrier, locker: &lockingAccounts{memAccounts: mem}}
			}
			issuers := make([]*Issuer, replicas)
			for n := range issuers {
				issuers[n] = e.issuer(accounts)
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			errs := make([]error, len(issuers))
			for n, iss := range issuers {
				wg.Go(func() {
					<-start
					errs[n] = iss.Prepare(t.Context())
				})
			}
			close(start)
			wg.Wait()
			for n, err := range errs {
				if err != nil {
					t.Fatalf("Prepare of issuer %d: %v", n, err)
				}
			}
			if got := mem.saveCount(); got != tt.wantSaves {
				t.Errorf("accounts registered = %d, want %d", got, tt.wantSaves)
			}
			if !tt.locking {
				return
			}
			stored, err := mem.Account(t.Context(), e.pebble.DirectoryURL)
			if err != nil {
				t.Fatal(err)
			}
			for n, iss := range issuers {
				s, err := iss.session(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if s.acct.URI != stored.URI {
					t.Errorf("issuer %d uses account %s, want the stored %s", n, s.acct.URI, stored.URI)
				}
			}
			// Every issuer still works with the shared account.
			if _, err := issuers[3].Obtain(t.Context(), Request{Names: []string{"shared.example.test"}, KeyType: "EC"}, e.solver(), nil); err != nil {
				t.Errorf("Obtain with the shared account: %v", err)
			}
		})
	}
}
