package main

//go:generate go run github.com/skein-dev/skein/tools/rmigen -o game_rmi.go game.rmi
