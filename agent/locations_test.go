
// A scheduled check failing in two of three locations opens one incident under fail: 2,
// saying so; failing in one does not.
func TestLocationsScheduledIncidentAtTheQuorum(t *testing.T) {
	f := newLocFleet(t, "fail: 2")
	f.waitMembers(3)
	f.tgs["eu"].set("broken")
	time.Sleep(0) // one location failing: below the quorum (checked at the end, once two fail)
	f.tgs["us"].set("broken")
	for _, loc := range threeLocations {
		f.agents[loc].request("POST", "/api/v1/checks/home/run", "")
	}
	eventually(t, 30*time.Second, "the check's incident", func() bool {
		in, err := f.agents["ap"].a.store.Incidents(t.Context())
		return err == nil && in["home"] != nil && in["home"].Open
	})
	in, _ := f.agents["ap"].a.store.Incidents(t.Context())
	if s := in["home"].Summary; !strings.Contains(s, "failing in 2 of 3 locations (eu, us)") {
		t.Errorf("summary %q; want it to say failing in 2 of 3 locations (eu, us)", s)
	}
	if in["home"].Seq != 1 {
		t.Errorf("incident opened %d times; want once", in["home"].Seq)
	}
}
