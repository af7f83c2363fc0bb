// Package qrterm draws QR codes in a terminal, for the device login's verification URL: a phone
// scans it instead of the user typing the URL.
//
// Each character cell shows two modules, one above the other, with the Unicode half blocks ▀ ▄ █
// and the space; a cell is about twice as tall as wide, so modules come out square. Dark modules
// are drawn in the foreground colour, and every line is set to black on white, so the code scans
// whatever the terminal's colour scheme (scanners expect dark modules on a light ground, and a
// light quiet zone around them).
package qrterm

import (
	"strings"

	"rsc.io/qr"
)

// QuietZone is the light border, in modules, that the QR specification requires on each side.
const QuietZone = 4

// Code is a QR code laid out as terminal lines of half blocks.
type Code struct {
	Lines []string // without colours: ' ' light, '▀' '▄' '█' dark above, below, both
	Width int      // columns of each line, quiet zone included
}

// Render encodes text (at the lowest error correction level, for the smallest code) and lays it
// out with its quiet zone.
func Render(text string) (*Code, error) {
	c, err := qr.Encode(text, qr.L)
	if err != nil {
		return nil, err
	}
	n := c.Size + 2*QuietZone
	dark := func(x, y int) bool { return c.Black(x-QuietZone, y-QuietZone) } // false outside
	code := &Code{Width: n}
	for y := 0; y < n; y += 2 {
		var b strings.Builder
		for x := 0; x < n; x++ {
			b.WriteRune(halfBlock(dark(x, y), dark(x, y+1)))
		}
		code.Lines = append(code.Lines, b.String())
	}
	return code, nil
}

func halfBlock(top, bottom bool) rune {
	switch {
	case top && bottom:
		return '█'
	case top:
		return '▀'
	case bottom:
		return '▄'
	}
	return ' '
}

// Black on white (SGR 30 and 47), then back to the terminal's colours.
const (
	colorOn  = "\x1b[30;47m"
	colorOff = "\x1b[0m"
)

// String is the code for a terminal: each line black on white, ending in a newline.
func (c *Code) String() string {
	var b strings.Builder
	for _, l := range c.Lines {
		b.WriteString(colorOn + l + colorOff + "\n")
	}
	return b.String()
}
