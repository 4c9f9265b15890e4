package gen

import (
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
)

// enumBases are the integer types an enum may have, with their ranges. int
// and uint are refused: their size depends on the platform, and an enum's
// range must be the same on every side of a game.
var enumBases = func() map[string][2]*big.Int {
	m := map[string][2]*big.Int{}
	for _, bits := range []uint{8, 16, 32, 64} {
		one := big.NewInt(1)
		umax := new(big.Int).Sub(new(big.Int).Lsh(one, bits), one)
		smax := new(big.Int).Sub(new(big.Int).Lsh(one, bits-1), one)
		smin := new(big.Int).Neg(new(big.Int).Lsh(one, bits-1))
		m[fmt.Sprintf("uint%d", bits)] = [2]*big.Int{new(big.Int), umax}
		m[fmt.Sprintf("int%d", bits)] = [2]*big.Int{smin, smax}
	}
	return m
}()

// declareEnum records an enum's name and its constants' names.
func (c *checker) declareEnum(en *Enum) {
	if !c.exportedName(en.Name, "enum name") {
		return
	}
	n := en.Name.Name
	if _, dup := c.top[n]; !dup {
		c.enums[n] = en
	}
	c.declare(n, en.Name.Pos, "enum "+n) // reports a collision
}

// checkEnum checks the underlying type, the value names and the values of an
// enum: every value fits the type, and no two share a name or a value.
func (c *checker) checkEnum(en *Enum) {
	n := en.Name.Name
	rng, ok := enumBases[en.Base.Name]
	if en.Base.Kind != Basic || !ok {
		c.errorf(en.Base.Pos, "enum %s: underlying type %s is not a sized integer type (int8..int64, uint8..uint64)", n, en.Base)
		rng = enumBases["int64"] // still check the values, for every message at once
	}
	if len(en.Values) == 0 {
		c.errorf(en.Name.Pos, "enum %s declares no values", n)
		return
	}
	names := map[string]*EnumValue{}
	values := map[string]*EnumValue{}
	next := new(big.Int)
	for _, v := range en.Values {
		if c.exportedName(v.Name, "enum value name") {
			if prev, ok := names[v.Name.Name]; ok {
				c.errorf(v.Name.Pos, "duplicate value name %s in enum %s (first at %s)", v.Name.Name, n, c.at(prev.Name.Pos))
			} else {
				names[v.Name.Name] = v
				if c.enums[n] == en {
					c.declare(n+v.Name.Name, v.Name.Pos, fmt.Sprintf("enum value %s.%s", n, v.Name.Name))
				}
			}
		}
		val := new(big.Int).Set(next)
		if v.Lit != "" {
			if _, ok := val.SetString(v.Lit, 10); !ok {
				continue // unreachable: the lexer passes only digits after an optional -
			}
		}
		if val.Cmp(rng[0]) < 0 || val.Cmp(rng[1]) > 0 {
			if v.Lit != "" {
				c.errorf(v.LitPos, "value %s of %s.%s is out of range of %s (%s..%s)", val, n, v.Name.Name, en.Base, rng[0], rng[1])
			} else {
				c.errorf(v.LitPos, "%s.%s would get value %s, above the largest %s (%s)", n, v.Name.Name, val, en.Base, rng[1])
			}
			next.Add(val, big.NewInt(1))
			continue
		}
		v.Value = val
		next.Add(val, big.NewInt(1))
		key := val.String()
		if prev, ok := values[key]; ok {
			c.errorf(v.LitPos, "duplicate value %s in enum %s: %s and %s (at %s)", key, n, v.Name.Name, prev.Name.Name, c.at(prev.Name.Pos))
			continue
		}
		values[key] = v
	}
}

// enumDecl writes an enum: the type, its constants, String, Valid and the
// codec methods. Decoding checks the value with Valid, so a stub never sees a
// value the IDL does not declare.
func (e *emitter) enumDecl(en *Enum) {
	n, base := en.Name.Name, en.Base.Name
	file := filepath.Base(e.f.Name)
	unsigned := strings.HasPrefix(base, "u")
	e.doc(en.Doc, fmt.Sprintf("%s is an enum declared in %s.", n, file))
	e.p("type %s %s", n, base)
	e.p("")
	e.p("// Values of %s.", n)
	e.p("const (")
	for _, v := range en.Values {
		e.doc(v.Doc, "")
		e.p("%s%s %s = %s", n, v.Name.Name, n, v.Value)
	}
	e.p(")")
	e.p("")
	e.para(fmt.Sprintf("String returns the name of v as %s declares it, or \"%s(N)\" for a value it does not declare.", file, n))
	e.p("func (v %s) String() string {", n)
	e.p("switch v {")
	for _, v := range en.Values {
		e.p("case %s%s:", n, v.Name.Name)
		e.p("return %q", v.Name.Name)
	}
	e.p("}")
	e.p("return rmi.EnumString(%q, int64(v), %t)", n, unsigned)
	e.p("}")
	e.p("")
	e.para(fmt.Sprintf("Valid reports whether %s declares v.", file))
	e.p("func (v %s) Valid() bool {", n)
	e.p("%s", enumValid(en))
	e.p("}")
	e.p("")
	e.para("EncodeRMI writes v as a msgpack integer (rmi.Marshaler). It does not check v: the receiving side refuses a value it does not declare.")
	e.p("func (v %s) EncodeRMI(e *rmi.Encoder) { e.Encode%s(%s(v)) }", n, methodSuffix(base), base)
	e.p("")
	e.para(fmt.Sprintf("DecodeRMI reads v from a msgpack integer (rmi.Unmarshaler). A value %s does not declare is a decode error (an *rmi.EnumError, which wraps rmi.ErrEnumValue) and leaves v as it was.", n))
	e.p("func (v *%s) DecodeRMI(d *rmi.Decoder) {", n)
	e.p("x := %s(d.Decode%s())", n, methodSuffix(base))
	e.p("if !x.Valid() {")
	e.p("d.SetError(&rmi.EnumError{Type: %q, Value: int64(x), Unsigned: %t})", n, unsigned)
	e.p("return")
	e.p("}")
	e.p("*v = x")
	e.p("}")
	e.p("")
	e.p("var (")
	e.p("_ rmi.Marshaler   = %s(0)", n)
	e.p("_ rmi.Unmarshaler = (*%s)(nil)", n)
	e.p(")")
	e.p("")
}

// enumValid returns the body of an enum's Valid method: a range check when
// the values are contiguous, a switch otherwise.
func enumValid(en *Enum) string {
	vals := make([]*big.Int, len(en.Values))
	for i, v := range en.Values {
		vals[i] = v.Value
	}
	slices.SortFunc(vals, func(a, b *big.Int) int { return a.Cmp(b) })
	lo, hi := vals[0], vals[len(vals)-1]
	span := new(big.Int).Sub(hi, lo)
	if span.Cmp(big.NewInt(int64(len(vals)-1))) == 0 {
		rng := enumBases[en.Base.Name]
		var conds []string
		if lo.Cmp(rng[0]) != 0 {
			conds = append(conds, fmt.Sprintf("v >= %s", lo))
		}
		if hi.Cmp(rng[1]) != 0 {
			conds = append(conds, fmt.Sprintf("v <= %s", hi))
		}
		if len(conds) == 0 {
			return "return true // every value of the type is declared"
		}
		return "return " + strings.Join(conds, " && ")
	}
	var b strings.Builder
	b.WriteString("switch v {\ncase ")
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v.String())
	}
	b.WriteString(":\nreturn true\n}\nreturn false")
	return b.String()
}
