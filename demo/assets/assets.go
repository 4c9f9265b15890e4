// Package assets holds the arena's sprites and sounds, embedded in the
// binary. They are drawn and synthesized by code in this repository (see
// gen/main.go: go run ./demo/assets/gen) and licensed with it; the font is
// the Go font family from golang.org/x/image (BSD licence). See LICENSES.
package assets

import (
	"bytes"
	"embed"
	"image"
	"image/png"
	"io/fs"
)

//go:embed images/*.png sounds/*.wav
var files embed.FS

// Image decodes images/<name>.png.
func Image(name string) (image.Image, error) {
	b, err := fs.ReadFile(files, "images/"+name+".png")
	if err != nil {
		return nil, err
	}
	return png.Decode(bytes.NewReader(b))
}

// Sound returns the bytes of sounds/<name>.wav (16-bit mono PCM, 44.1 kHz).
func Sound(name string) ([]byte, error) {
	return fs.ReadFile(files, "sounds/"+name+".wav")
}

// FS returns every embedded file.
func FS() fs.FS { return files }
