package testidl

//go:generate go run ../../../../tools/rmigen -o everything_rmi.go everything.rmi
