package checks

import dto "github.com/prometheus/client_model/go"

// Families are metric families kept beside a registry rather than in it. Series that are
// many (a dozen per check) are kept as rows of numbers and made into metric families only
// when /metrics is scraped, and then a part of the checks at a time, so that a scrape need
// not hold every series' objects at once: through a registry, 10,000 checks' series were
// some 60-100 MB of objects, all made before the first byte was written. The agent's
// /metrics merges them by name among the registry's; a name belongs to one side only.
type Families interface {
	// Names are the families' names, sorted. They do not change.
	Names() []string
	// Snapshot takes the rows of one scrape, a row per check, sorted by check. Their
	// values are copied a part at a time (FamilyRows.Family), so that a scrape holds one
	// part's copies, not every check's. inTurn says the scrape is done with each family
	// it is handed before it asks for the next (it encodes a part and drops it), so that
	// every family may be made in the same memory.
	Snapshot(inTurn bool) FamilyRows
}

// FamilyRows are the rows of one scrape.
type FamilyRows interface {
	// Len is the number of rows.
	Len() int
	// Family makes family f (an index into Names) of rows [from, to), its metrics in the
	// order a registry sorts them into, from the rows' values as they are when it is
	// made (a check gone since has none). It has no metrics when none of the rows has one.
	// It may reuse the memory of a family made from another range: families made from one
	// range stay valid together (unless the rows were taken in turn, when it may reuse
	// any family's), and none is written to after it is returned.
	Family(f, from, to int) *dto.MetricFamily
}
