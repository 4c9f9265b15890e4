// Package sim is the arena's simulation: the map, players, bullets, health
// packs, rounds and scores, stepped at a fixed tick from players' inputs, and
// the bots' AI. It has no rendering and no networking (and imports neither
// Ebitengine nor the engine), so the match host, the clients' prediction,
// the headless bots and the tests all run the same code.
//
// The simulation is deterministic: the same world stepped with the same
// inputs gives the same world, bit for bit, on every machine that rounds
// float32 arithmetic the same way (every Go port without fused
// multiply-add; the positions are also snapped to 1/16 unit each tick, so
// they fit the wire format exactly). A Snapshot is the whole state of a World:
// a new host that builds a World from the last snapshot it received carries on
// the match where the old host left it.
//
// Coordinates are world units (one pixel at zoom 1), x to the right and y
// down; angles are radians clockwise from +x, carried as a uint16 "aim"
// (65536 steps per turn).
package sim
