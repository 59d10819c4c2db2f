//go:build race

package chat

// raceEnabled reports whether the race detector is on; it inflates memory
// figures several times over.
const raceEnabled = true
