package gen

import (
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
)

// maxFrame is the largest frame a call may need: a reliable message.
const maxFrame = net.MaxReliable

// maxSize returns the most bytes a value of t takes when encoded, and false
// if that is unbounded (strings, byte slices, slices, maps, Go types).
// Structs must be acyclic by value (checkRecursion).
func maxSize(t *Type) (int, bool) {
	switch t.Kind {
	case Basic:
		switch t.Name {
		case "bool":
			return 1, true
		case "float32":
			return 5, true
		case "string":
			return 0, false
		}
		return 9, true // any integer, float64
	case EnumKind:
		return 9, true
	case Bytes, GoType, Slice, Map:
		return 0, false
	case Named:
		s := t.strct
		if s == nil {
			return 0, false
		}
		if s.maxSize == 0 { // once per struct: nested structs would be exponential
			s.maxSize = -1 // unbounded unless every field is bounded
			n := 5         // array32 header
			for _, fd := range s.Fields {
				m, ok := maxSize(fd.Type)
				if !ok {
					return 0, false
				}
				n = min(n+m, maxFrame+1) // enough to refuse; no overflow
			}
			s.maxSize = n
		}
		return s.maxSize, s.maxSize > 0
	default:
		return 0, false
	}
}

// listMaxSize returns the most bytes of a msgpack array of params, or false.
func listMaxSize(ps []*Param) (int, bool) {
	n := 5
	for _, p := range ps {
		m, ok := maxSize(p.Type)
		if !ok {
			return 0, false
		}
		n = min(n+m, maxFrame+1)
	}
	return n, true
}

// checkSizes refuses calls whose arguments, and requests whose results,
// always take more than a reliable message can carry when their size is
// bounded: they could never be sent whole.
func (c *checker) checkSizes() {
	for _, d := range c.f.Decls {
		g, ok := d.(*Global)
		if !ok {
			continue
		}
		for _, m := range g.Methods {
			head := rmi.HeaderSize
			if m.Request {
				head = rmi.RequestHeaderSize
			}
			if n, ok := listMaxSize(m.Params); ok && head+n > maxFrame {
				c.errorf(m.Name.Pos, "the arguments of %s.%s can take more than the %d bytes of a reliable message, so the call could not always be sent", g.Name.Name, m.Name.Name, maxFrame)
			}
			if !m.Request {
				continue
			}
			if n, ok := listMaxSize(m.Results); ok && rmi.ResponseHeaderSize+n > maxFrame {
				c.errorf(m.Name.Pos, "the results of %s.%s can take more than the %d bytes of a reliable message, so the call could not always be sent", g.Name.Name, m.Name.Name, maxFrame)
			}
		}
	}
}
