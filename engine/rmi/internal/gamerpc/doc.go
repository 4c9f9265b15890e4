package gamerpc

//go:generate go run ../../../../tools/rmigen -o game_rmi.go game.rmi
