package main

import (
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows a progress bar on standard error when it is a terminal; otherwise it does
// nothing, so piped and redirected runs stay quiet.
type progress struct {
	bar *progressbar.ProgressBar
}

// quietProgress turns progress bars off (--quiet).
var quietProgress bool

// newProgress starts a bar of total steps (-1: unknown, a spinner with a count).
func newProgress(s streams, total int64, what string) *progress {
	f, ok := s.err.(*os.File)
	if quietProgress || !ok || !term.IsTerminal(int(f.Fd())) {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)}
}

func (p *progress) add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

// done clears the bar.
func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
	}
}
