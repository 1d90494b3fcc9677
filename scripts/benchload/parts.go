package main

// The parts scenario: where the floor's CPU per check goes. A vigil, the floor and the floor
// without one or both of its two parts (the store's insert of each run; net/http's transport,
// replaced by the bench's own synchronous client, syncclient.go) run at the same time, over
// the same seconds, with cloudprober beside them where it is given. The differences between
// them, round by round, are what each part costs per check; the last floor, with neither, is
// what is left: the timers, the wake-ups, the loopback write and read.

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
)

// partNames are the floors of the scenario, in the order printed.
var partNames = []struct {
	name string
	part floorPart
}{
	{"floor", floorPart{}},
	{"floor, nothing stored", floorPart{noStore: true}},
	{"floor, own client", floorPart{sync: true}},
	{"floor, own client, nothing stored", floorPart{sync: true, noStore: true}},
}

// partsRound is one round's figures: vigil's, each floor's in partNames' order, and
// cloudprober's (zero when it was not given).
type partsRound struct {
	vigil  measured
	floors []measured
	peer   measured
}

func runParts(vigil, self, peer, tmp, target string, sc scenario, rounds int) error {
	// The row each floor inserts: one of vigil's own, from a short run.
	short := sc
	short.warm, short.window = sc.warm/2, sc.window/10
	_, sample, err := runVigil(vigil, filepath.Join(tmp, "parts-sample"), target, short, "")
	if err != nil {
		return err
	}
	var rs []partsRound
	for r := range rounds {
		dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", sc.name, r))
		pr := partsRound{floors: make([]measured, len(partNames))}
		errs := make([]error, len(partNames)+1)
		var wg sync.WaitGroup
		for i, p := range partNames {
			wg.Go(func() {
				pr.floors[i], errs[i] = runFloorProcess(self, filepath.Join(dir, fmt.Sprintf("floor-%d", i)), sample, target, sc, p.part)
			})
		}
		if peer != "" {
			wg.Go(func() { pr.peer, errs[len(partNames)] = runCloudprober(peer, filepath.Join(dir, "peer"), target, sc) })
		}
		var verr error
		pr.vigil, _, verr = runVigil(vigil, filepath.Join(dir, "vigil"), target, sc, "")
		wg.Wait()
		if err := errors.Join(append(errs, verr)...); err != nil {
			return err
		}
		fmt.Printf("   round %d: vigil %s\n", r+1, pr.vigil)
		for i, p := range partNames {
			fmt.Printf("            %-34s %s\n", p.name, pr.floors[i])
		}
		if peer != "" {
			fmt.Printf("            %-34s %s\n", "cloudprober", pr.peer)
		}
		rs = append(rs, pr)
	}
	printParts(rs, peer != "")
	return nil
}

// printParts prints each part's cost per check (the median of the rounds' differences, and
// their range) and, where cloudprober ran, each process's ratio to it.
func printParts(rs []partsRound, peer bool) {
	spread := func(format string, f func(partsRound) float64) string {
		var v []float64
		for _, r := range rs {
			v = append(v, f(r))
		}
		slices.Sort(v)
		return fmt.Sprintf(format+" (rounds "+format+" to "+format+")", v[(len(v)-1)/2], v[0], v[len(v)-1])
	}
	per := func(f func(partsRound) float64) string { return spread("%.3f", f) }
	cost := func(m measured) float64 { return ms(m.perCheck()) }
	floor := func(i int) func(partsRound) float64 { return func(r partsRound) float64 { return cost(r.floors[i]) } }
	diff := func(a, b func(partsRound) float64) func(partsRound) float64 {
		return func(r partsRound) float64 { return a(r) - b(r) }
	}
	vig := func(r partsRound) float64 { return cost(r.vigil) }
	fmt.Printf("  ms of CPU per check, side by side (medians of %d rounds):\n", len(rs))
	fmt.Printf("    vigil %s; the floor %s\n", per(vig), per(floor(0)))
	fmt.Printf("    the store's insert of a run (the floor - nothing stored):        %s\n", per(diff(floor(0), floor(1))))
	fmt.Printf("    net/http's transport (the floor - own client):                    %s\n", per(diff(floor(0), floor(2))))
	fmt.Printf("    what is left without both (own client, nothing stored):           %s\n", per(floor(3)))
	fmt.Printf("    vigil's own work (vigil - the floor):                             %s\n", per(diff(vig, floor(0))))
	for i, p := range partNames {
		failed := 0
		for _, r := range rs {
			failed += r.floors[i].failed
		}
		if failed > 0 {
			fmt.Printf("    %s: %d requests not answered 200 (its figures count only the runs answered)\n", p.name, failed)
		}
	}
	if !peer {
		return
	}
	to := func(f func(partsRound) float64) string {
		return spread("%.2fx", func(r partsRound) float64 { return ratio(f(r), cost(r.peer)) })
	}
	fmt.Printf("  ratio to cloudprober (%s ms per check):\n", per(func(r partsRound) float64 { return cost(r.peer) }))
	fmt.Printf("    vigil %s; the floor %s\n", to(vig), to(floor(0)))
	for i, p := range partNames[1:] {
		fmt.Printf("    %s: %s\n", p.name, to(floor(i+1)))
	}
}
