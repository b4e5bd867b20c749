package api

import (
	"encoding/json"
	"regexp"
)

// destinationNamePattern is the shape of a destination's name.
var destinationNamePattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,63}$`)

// maxDestinations is the most destinations one request may name.
const maxDestinations = 20

// parseDestinations validates the destinations member (issue 8): an array
// of destination names. Absent or null is nil (the configured defaults);
// [] is no destination besides the built-in store. Whether each name is
// configured is the backend's to say.
func parseDestinations(raw json.RawMessage, errs fieldErrors) []string {
	const field = "Destinations"
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var names []string
	if raw[0] != '[' || json.Unmarshal(raw, &names) != nil {
		errs.add(field, "The Destinations must be an array of destination names.")
		return nil
	}
	if len(names) > maxDestinations {
		errs.add(field, "The Destinations must name at most %d destinations; it names %d.", maxDestinations, len(names))
	}
	out := make([]string, 0, len(names))
	seen := map[string]bool{}
	for _, n := range names {
		if !destinationNamePattern.MatchString(n) {
			errs.add(field, "The destination name '%s' must be 1 to 63 letters, digits, '_' or '-'.", n)
			continue
		}
		if seen[n] {
			errs.add(field, "The destination '%s' is named twice.", n)
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}
