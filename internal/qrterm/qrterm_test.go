package qrterm

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// modules reads the lines back into a grid of modules (true = dark), two per character.
func modules(t *testing.T, c *Code) [][]bool {
	t.Helper()
	grid := make([][]bool, 2*len(c.Lines))
	for i, line := range c.Lines {
		if n := utf8.RuneCountInString(line); n != c.Width {
			t.Fatalf("line %d has %d columns, want %d", i, n, c.Width)
		}
		for _, r := range line {
			top, bottom := r == '▀' || r == '█', r == '▄' || r == '█'
			if !top && !bottom && r != ' ' {
				t.Fatalf("line %d has %q", i, r)
			}
			grid[2*i] = append(grid[2*i], top)
			grid[2*i+1] = append(grid[2*i+1], bottom)
		}
	}
	return grid
}

func TestRender(t *testing.T) {
	c, err := Render("https://sso.example.com/realms/main/device?user_code=BCDF-GHJK")
	if err != nil {
		t.Fatal(err)
	}
	size := c.Width - 2*QuietZone // modules of the code itself: 21, 25, 29, … (version 1, 2, 3, …)
	if size < 21 || (size-21)%4 != 0 {
		t.Fatalf("width %d: the code inside the quiet zone is %d modules, not a QR size", c.Width, size)
	}
	if want := (c.Width + 1) / 2; len(c.Lines) != want {
		t.Fatalf("%d lines, want %d (two rows of modules per line)", len(c.Lines), want)
	}
	g := modules(t, c)
	// The quiet zone is light, all around (and the half row below the last, if any).
	for y := range g {
		for x := range g[y] {
			inside := y >= QuietZone && y < QuietZone+size && x >= QuietZone && x < QuietZone+size
			if !inside && g[y][x] {
				t.Fatalf("dark module at (%d,%d), in the quiet zone", x, y)
			}
		}
	}
	// Finder patterns in three corners: a dark 7×7 ring, a light ring, a dark 3×3 centre, and a
	// light separator around them; none in the bottom-right corner.
	finder := func(x0, y0 int) bool {
		for dy := -1; dy <= 7; dy++ {
			for dx := -1; dx <= 7; dx++ {
				x, y := QuietZone+x0+dx, QuietZone+y0+dy
				if x < QuietZone || y < QuietZone || x >= QuietZone+size || y >= QuietZone+size {
					continue
				}
				ring := max(abs(dx-3), abs(dy-3)) // 0 centre … 3 outer ring, 4 separator
				if want := ring != 2 && ring != 4; g[y][x] != want {
					return false
				}
			}
		}
		return true
	}
	for _, corner := range [][2]int{{0, 0}, {size - 7, 0}, {0, size - 7}} {
		if !finder(corner[0], corner[1]) {
			t.Errorf("no finder pattern at module (%d,%d)", corner[0], corner[1])
		}
	}
	if finder(size-7, size-7) {
		t.Error("a finder pattern in the bottom-right corner")
	}

	s := c.String()
	if got := strings.Count(s, "\n"); got != len(c.Lines) {
		t.Fatalf("String has %d lines, want %d", got, len(c.Lines))
	}
	for i, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line != colorOn+c.Lines[i]+colorOff {
			t.Fatalf("line %d of String = %q", i, line)
		}
	}
}

func TestRenderLonger(t *testing.T) {
	short, _ := Render("https://a.example")
	long, err := Render("https://login.microsoftonline.com/common/oauth2/deviceauth?user_code=" + strings.Repeat("X", 100))
	if err != nil {
		t.Fatal(err)
	}
	if long.Width <= short.Width {
		t.Errorf("a longer text gave a code %d wide, the short one %d", long.Width, short.Width)
	}
	if _, err := Render(strings.Repeat("x", 5000)); err == nil {
		t.Error("5000 bytes encoded, more than a QR code holds")
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
