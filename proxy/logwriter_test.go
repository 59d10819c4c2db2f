package proxy

import (
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuilder struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *lockedBuilder) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *lockedBuilder) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

// TestLogWriterFlushes: buffered lines appear within the flush period, all
// of them in order after Close, and writes after Close pass straight through.
func TestLogWriterFlushes(t *testing.T) {
	out := &lockedBuilder{}
	w := NewLogWriter(out)
	w.Write([]byte("one\n"))
	eventually(t, 2*time.Second, "periodic flush", func() bool { return out.String() == "one\n" })

	var want strings.Builder
	want.WriteString("one\n")
	for i := 0; i < 5000; i++ { // more than the buffer holds
		line := strings.Repeat("x", i%50) + "\n"
		want.WriteString(line)
		w.Write([]byte(line))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != want.String() {
		t.Fatalf("lines lost or reordered: got %d bytes, want %d", len(out.String()), want.Len())
	}
	w.Write([]byte("late\n"))
	if !strings.HasSuffix(out.String(), "late\n") {
		t.Error("write after Close was not passed through")
	}
}
