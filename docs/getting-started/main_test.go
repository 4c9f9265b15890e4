package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRun plays the guide's match on loopback and checks what it prints.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, []string{"alice", "bob", "carol"}); err != nil {
		t.Fatalf("run: %v (printed %q)", err, out.String())
	}
	want := "alice: in a group of 3 on map=meadow, saw 2 other players move\n" +
		"bob: in a group of 3 on map=meadow, saw 2 other players move\n" +
		"carol: in a group of 3 on map=meadow, saw 2 other players move\n"
	if out.String() != want {
		t.Fatalf("printed\n%s\nwant\n%s", out.String(), want)
	}
	shown := false
	for _, b := range guideBlocks(t) {
		if b.file == outputMark {
			shown = true
			if b.text != want {
				t.Errorf("%s:%d: the output shown is not what the program prints:\n%s", guide, b.line, want)
			}
		}
	}
	if !shown {
		t.Errorf("%s shows no output (a block after %s)", guide, outputMark)
	}
}

// guide is the guide that shows this directory's files.
const guide = "../GETTING-STARTED.md"

// fileMark is the line before a code block that shows one of this
// directory's files: <!-- file: main.go -->.
const fileMark = "<!-- file: "

// outputMark is the line before the code block that shows what the
// program prints.
const outputMark = "<!-- output -->"

// guideBlocks returns the guide's fenced code blocks: for each, the file it
// shows ("" when no mark precedes it), its info string and its text.
func guideBlocks(t *testing.T) []block {
	t.Helper()
	src, err := os.ReadFile(guide)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []block
	var cur *block
	mark := ""
	sc := bufio.NewScanner(bytes.NewReader(src))
	for line := 1; sc.Scan(); line++ {
		l := sc.Text()
		switch {
		case cur != nil && l == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		case strings.HasPrefix(l, "```"):
			cur = &block{file: mark, info: strings.TrimPrefix(l, "```"), line: line}
			mark = ""
		case l == outputMark:
			mark = outputMark
		case strings.HasPrefix(l, fileMark) && strings.HasSuffix(l, " -->"):
			mark = strings.TrimSuffix(strings.TrimPrefix(l, fileMark), " -->")
		case strings.TrimSpace(l) != "":
			mark = "" // a mark belongs to the block right after it
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: code block never closed", guide, cur.line)
	}
	return blocks
}

type block struct {
	file, info, text string
	line             int
}

// TestGuideShowsTheFiles checks that every Go and IDL block of the guide
// is one of this directory's files, byte for byte, and that the guide shows
// every file a reader writes: the guide's code is the code TestRun runs.
func TestGuideShowsTheFiles(t *testing.T) {
	shown := map[string]bool{}
	for _, b := range guideBlocks(t) {
		if b.file == outputMark {
			continue // TestRun checks it
		}
		if b.file == "" {
			if b.info == "go" || b.info == "rmi" {
				t.Errorf("%s:%d: a %s block that shows no file (put %sNAME --> before it)", guide, b.line, b.info, fileMark)
			}
			continue
		}
		if filepath.Base(b.file) != b.file {
			t.Errorf("%s:%d: %q is not a file of this directory", guide, b.line, b.file)
			continue
		}
		want, err := os.ReadFile(b.file)
		if err != nil {
			t.Errorf("%s:%d: %v", guide, b.line, err)
			continue
		}
		if b.text != string(want) {
			t.Errorf("%s:%d: the block differs from %s: copy the file into the guide", guide, b.line, b.file)
		}
		shown[b.file] = true
	}
	// Every file a reader writes: not the tests, not what go generate writes.
	files, err := filepath.Glob("*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.HasSuffix(f, "_rmi.go") {
			continue
		}
		if !shown[f] {
			t.Errorf("%s does not show %s", guide, f)
		}
	}
}
