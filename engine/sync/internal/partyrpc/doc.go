package partyrpc

//go:generate go run ../../../../tools/rmigen -o party_rmi.go party.rmi
