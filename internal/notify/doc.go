// Package notify sends incident messages to the channels of a plan: Slack
// incoming webhooks, PagerDuty Events API v2 (trigger, acknowledge and
// resolve under one dedup key), generic JSON webhooks and email over SMTP.
// Message texts are Go templates; the defaults are the DR plan's INCIDENT
// ALERT and RESOLVED notices.
package notify
