package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DNSInfo describes an authoritative BIND 9 server for Zone that accepts RFC 2136 dynamic
// updates signed with the TSIG key TSIGName (names are fully qualified, with the final dot).
// The zone starts with ns1 (127.0.0.1), api (A 10.0.1.10), db (A 10.0.1.20) and www
// (CNAME api), all with TTL 60.
type DNSInfo struct {
	Addr          string // 127.0.0.1:PORT, UDP and TCP
	Zone          string // linkapp.test.
	TSIGName      string // linkdr-ddns.
	TSIGAlgorithm string // hmac-sha256
	TSIGSecret    string // base64
}

// DNS returns the shared DNS server. Tests that update it should use names of their own;
// use [NewDNS] to change the initial records.
func DNS(t testing.TB) DNSInfo {
	t.Helper()
	return DNSInfo{
		Addr:          Get(t, "LINKDR_TEST_DNS_ADDR"),
		Zone:          Get(t, "LINKDR_TEST_DNS_ZONE"),
		TSIGName:      Get(t, "LINKDR_TEST_DNS_TSIG_NAME"),
		TSIGAlgorithm: Get(t, "LINKDR_TEST_DNS_TSIG_ALGORITHM"),
		TSIGSecret:    Get(t, "LINKDR_TEST_DNS_TSIG_SECRET"),
	}
}

// NewDNS starts a BIND 9 server of the test's own (named -g) on a free port, serving
// linkapp.test. with the same initial records and key layout as the shared one, and stops it
// when the test ends.
func NewDNS(t testing.TB) DNSInfo {
	t.Helper()
	named := Bin(t, "named")
	dir := t.TempDir()
	var key [32]byte
	_, _ = rand.Read(key[:])
	info := DNSInfo{
		Zone:          "linkapp.test.",
		TSIGName:      "linkdr-ddns.",
		TSIGAlgorithm: "hmac-sha256",
		TSIGSecret:    base64.StdEncoding.EncodeToString(key[:]),
	}
	zone := strings.TrimSuffix(info.Zone, ".")
	zoneFile := filepath.Join(dir, "db."+zone)
	records := fmt.Sprintf(`$TTL 60
@	IN SOA	ns1.%[1]s hostmaster.%[1]s 1 60 60 600 60
@	IN NS	ns1.%[1]s
ns1	IN A	127.0.0.1
api	IN A	10.0.1.10
db	IN A	10.0.1.20
www	IN CNAME	api.%[1]s
`, info.Zone)
	if err := os.WriteFile(zoneFile, []byte(records), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	for attempt := 0; ; attempt++ {
		port := FreePort(t)
		info.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		conf := fmt.Sprintf(`key "%[1]s" { algorithm %[2]s; secret "%[3]s"; };
options {
	directory "%[4]s";
	listen-on port %[5]d { 127.0.0.1; };
	listen-on-v6 { none; };
	pid-file none;
	session-keyfile none;
	recursion no;
	allow-query { any; };
	dnssec-validation no;
	notify no;
};
controls { };
zone "%[6]s" {
	type primary;
	file "%[7]s";
	allow-update { key "%[1]s"; };
};
`, strings.TrimSuffix(info.TSIGName, "."), info.TSIGAlgorithm, info.TSIGSecret, dir, port, zone, zoneFile)
		confFile := filepath.Join(dir, "named.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		logFile := filepath.Join(dir, "log")
		srv, err := startServer("named "+info.Addr, logFile, nil, syscall.SIGKILL, named, "-g", "-c", confFile, "-n", "1")
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		t.Cleanup(func() {
			if err := srv.stop(syscall.SIGTERM, 30*time.Second); err != nil {
				t.Errorf("testenv: %v", err)
			}
		})
		err = srv.waitReady(30*time.Second, func() error {
			_, err := querySOA(info.Addr, info.Zone)
			return err
		})
		if err != nil && attempt < 3 && srv.addrInUse() {
			_ = os.Truncate(logFile, 0)
			continue
		}
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		return info
	}
}

// querySOA asks addr over UDP for the SOA record of zone and returns the number of answers;
// an error unless the answer is authoritative NOERROR with at least one record.
func querySOA(addr, zone string) (int, error) {
	conn, err := net.DialTimeout("udp", addr, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	msg := binary.BigEndian.AppendUint16(nil, id)
	msg = append(msg, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0) // no flags, QDCOUNT=1
	for _, label := range strings.Split(strings.TrimSuffix(zone, "."), ".") {
		msg = append(msg, byte(len(label)))
		msg = append(msg, label...)
	}
	msg = append(msg, 0, 0, 6, 0, 1) // root, QTYPE=SOA, QCLASS=IN
	if _, err := conn.Write(msg); err != nil {
		return 0, err
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return 0, err
	}
	if n < 12 || binary.BigEndian.Uint16(buf) != id {
		return 0, errors.New("dns: short or mismatched reply")
	}
	flags := binary.BigEndian.Uint16(buf[2:])
	if rcode := flags & 0xf; rcode != 0 {
		return 0, fmt.Errorf("dns: SOA %s: rcode %d", zone, rcode)
	}
	if flags&0x0400 == 0 {
		return 0, fmt.Errorf("dns: SOA %s: answer not authoritative", zone)
	}
	an := int(binary.BigEndian.Uint16(buf[6:]))
	if an == 0 {
		return 0, fmt.Errorf("dns: SOA %s: no answer", zone)
	}
	return an, nil
}
