package portmap

// WithPorts points cfg at a gateway's PCP/NAT-PMP and SSDP ports other than
// 5351 and 1900 (a fake gateway on the loopback).
func WithPorts(cfg Config, pcp, ssdp uint16) Config {
	cfg.pcpPort, cfg.ssdpPort = pcp, ssdp
	return cfg
}

// Decoders, for the fuzz targets.
var (
	ParsePCPResponse    = parsePCPResponse
	ParseNATPMPResponse = parseNATPMPResponse
	ParseSSDPResponse   = parseSSDPResponse
	ParseRouteTable     = parseRouteTable
	DecodeDescription   = decodeDescription
)
