// Package dnszone reads, replaces and verifies record sets in a zone at a
// DNS provider: any server that takes RFC 2136 dynamic updates signed with
// TSIG (BIND, PowerDNS, Knot), or Amazon Route 53. A change counts as
// made only when the zone's authoritative servers answer with it.
package dnszone
