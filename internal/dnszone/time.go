package dnszone

import "time"

func timeUntil(t time.Time) time.Duration {
	d := time.Until(t)
	if d < time.Second {
		return time.Second
	}
	return d
}
