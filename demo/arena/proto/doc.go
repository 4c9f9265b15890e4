package proto

//go:generate go run ../../../tools/rmigen -o arena_rmi.go arena.rmi
