package agent

import (
	"bytes"
	"html/template"
	"iter"
	"strconv"
	"time"
)

// The overview of a thousand checks is 4.7 MB of HTML, nearly all of it the check rows.
// It is never held whole: the template writes everything but the rows, with a marker where
// each group's rows go (groupView.RowsMark), and the rows are written in the markers'
// places as the page is sent, a batch at a time, through the redaction and the compression
// (redactOutput). The template is the part that can fail, and it has run before anything
// is sent, so a failure still answers 500, never half a page.
//
// A batch ends at the end of a row and a template part at a marker, both between two
// pieces of the page's own markup and at the start of a line (a row ends with "</tr>\n";
// a marker starts a line, TestRowsMarksStartLines, and "</table>" follows it), so no
// value on the page is cut in two, nor a line, and each part redacted alone masks what the
// whole page redacted at once would: TestOverviewPartsRedactAsTheWhole holds it.

// rowsMarkPrefix starts the marker of a group's rows: "<!--vigil:rows:3-->" for the
// group at index 3. Like buildMarker it is the template's own: text from outside reaches
// a page escaped, never as "<!--".
const rowsMarkPrefix = "<!--vigil:rows:"

// rowsBatch is how many bytes of rows are written (and redacted, and compressed) at a time.
const rowsBatch = 64 << 10

// RowsMark is the marker the template writes where the group's rows go.
func (g *groupView) RowsMark() template.HTML {
	return template.HTML(rowsMarkPrefix + strconv.Itoa(g.index) + "-->")
}

// rowGroups are a page's groups of rows when its template marks where they go.
type rowGroups interface{ rowGroups() []*groupView }

func (v *indexView) rowGroups() []*groupView { return v.Groups }

// pageParts are the parts of page, the template's output, with the groups' rows in place
// of their markers: in order, each valid until the next is asked for. The build time is
// written into the part with its marker as that part comes, so it counts the rows too.
func pageParts(page []byte, groups []*groupView, began time.Time) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		var batch []byte
		for from := 0; ; {
			i := bytes.Index(page[from:], []byte(rowsMarkPrefix))
			if i < 0 {
				break
			}
			i += from
			end := bytes.Index(page[i:], []byte("-->"))
			g, err := -1, error(nil)
			if end > len(rowsMarkPrefix) {
				g, err = strconv.Atoi(string(page[i+len(rowsMarkPrefix) : i+end]))
			}
			if err != nil || g < 0 || g >= len(groups) {
				from = i + len(rowsMarkPrefix) // not a marker of these groups: it goes as it is
				continue
			}
			if !yield(page[:i]) {
				return
			}
			page, from = page[i+end+len("-->"):], 0
			if batch == nil {
				batch = make([]byte, 0, rowsBatch+8<<10)
			}
			for _, row := range groups[g].Rows {
				if batch = row.appendHTML(batch); len(batch) >= rowsBatch {
					if !yield(batch) {
						return
					}
					batch = batch[:0]
				}
			}
			if len(batch) > 0 && !yield(batch) {
				return
			}
			batch = batch[:0]
		}
		fillBuildTime(page, began)
		yield(page)
	}
}

// fillBuildTime writes how long the page took since began in place of the layout's marker
// in page, if it holds it: padded with spaces (HTML shows them as one), not a copy of the
// page.
func fillBuildTime(page []byte, began time.Time) {
	took := strconv.FormatFloat(float64(time.Since(began).Microseconds())/1000, 'f', 1, 64) + " ms"
	if i := bytes.LastIndex(page, []byte(buildMarker)); i >= 0 && len(took) <= len(buildMarker) {
		field := page[i : i+len(buildMarker)]
		for j := copy(field, took); j < len(field); j++ {
			field[j] = ' '
		}
	}
}
