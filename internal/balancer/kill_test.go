package balancer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corsgate/corsgate/internal/testutil"
)

// TestReplicaKill: 64 callers for 20 s through a pool of three greetd
// processes; one is SIGKILLed at 5 s and started again on its address at
// 10 s. Calls in flight on it may fail; every call started after the kill
// succeeds; within 5 s of the restart it takes calls again. With -short,
// every time is a quarter.
func TestReplicaKill(t *testing.T) {
	t.Parallel()
	scale := time.Duration(4)
	if testing.Short() {
		scale = 1
	}
	killAfter, restartAfter, runFor := scale*1250*time.Millisecond, scale*2500*time.Millisecond, scale*5*time.Second
	const callers = 64

	replicas := []*testutil.GreetdProcess{testutil.StartGreetdProcess(t, "127.0.0.1:0"), testutil.StartGreetdProcess(t, "127.0.0.1:0"), testutil.StartGreetdProcess(t, "127.0.0.1:0")}
	victim := replicas[1]
	var ejections atomic.Int64
	p := newPool(t, Config{Name: "greet", Addresses: []string{replicas[0].Addr, replicas[1].Addr, replicas[2].Addr},
		Observe: func(e ReplicaEvent) {
			if e.To == StateEjected {
				ejections.Add(1)
			}
		}})

	var killedAt atomic.Int64 // unix nanoseconds once the victim's process ended
	var (
		calls, ok, inFlightFailed, lateFailed, otherFailed atomic.Int64
		mu                                                 sync.Mutex
		samples                                            []string
	)
	note := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if len(samples) < 5 {
			samples = append(samples, err.Error())
		}
	}
	start := time.Now()
	stop := start.Add(runFor)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				began := time.Now().UnixNano()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := greet(ctx, p, greetRequest("x"))
				cancel()
				calls.Add(1)
				k := killedAt.Load()
				switch {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, errTransport):
					otherFailed.Add(1) // a gRPC status: never expected
					note(err)
				case k != 0 && began > k:
					lateFailed.Add(1)
					note(err)
				default:
					inFlightFailed.Add(1)
					note(err)
				}
			}
		})
	}

	time.Sleep(time.Until(start.Add(killAfter)))
	callsAtKill := status(p, victim.Addr).Calls
	victim.Kill()
	killedAt.Store(time.Now().UnixNano())
	eventually(t, 2*time.Second, "the killed replica ejected", func() bool { return status(p, victim.Addr).State == StateEjected })
	ejectedIn := time.Since(time.Unix(0, killedAt.Load()))

	time.Sleep(time.Until(start.Add(restartAfter)))
	callsBeforeRestart := status(p, victim.Addr).Calls
	restarted := testutil.StartGreetdProcess(t, victim.Addr)
	restartedAt := time.Now()
	eventually(t, 5*time.Second, "the restarted replica takes calls", func() bool {
		return status(p, restarted.Addr).Calls > callsBeforeRestart+10
	})
	backIn := time.Since(restartedAt)
	wg.Wait()

	st := p.Replicas()
	t.Logf("%d callers, %v: %d calls, %d ok, %d failed in flight at the kill, %d failed after it, %d other failures",
		callers, runFor, calls.Load(), ok.Load(), inFlightFailed.Load(), lateFailed.Load(), otherFailed.Load())
	t.Logf("victim %s: %d calls before the kill, %d before the restart, ejected %v after the kill, back %v after the restart; ejections %d",
		victim.Addr, callsAtKill, callsBeforeRestart, ejectedIn.Round(time.Millisecond), backIn.Round(time.Millisecond), ejections.Load())
	for _, s := range st {
		t.Logf("replica %s: %s, %d calls, %d ejections", s.Address, s.State, s.Calls, s.Ejections)
	}
	if len(samples) > 0 {
		t.Logf("failures seen: %q", samples)
	}
	if lateFailed.Load() != 0 || otherFailed.Load() != 0 {
		t.Errorf("%d calls started after the kill failed, %d failed otherwise: want none", lateFailed.Load(), otherFailed.Load())
	}
	if ok.Load() < calls.Load()/2 || ok.Load() < 1000 {
		t.Errorf("only %d of %d calls succeeded", ok.Load(), calls.Load())
	}
	for _, s := range st {
		if s.State != StateReady {
			t.Errorf("replica %s is %s at the end", s.Address, s.State)
		}
		if s.Address != victim.Addr && s.Ejections != 0 {
			t.Errorf("replica %s that was not killed was ejected %d times", s.Address, s.Ejections)
		}
	}
	if s := status(p, victim.Addr); s.Ejections < 1 {
		t.Errorf("the killed replica was never ejected: %+v", s)
	}
}
