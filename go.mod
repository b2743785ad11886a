module github.com/linkapp/linkdr

go 1.26.8

require (
	filippo.io/age v1.3.2
	github.com/klauspost/compress v1.20.4
)

require (
	filippo.io/hpke v0.4.0 // indirect
	github.com/robfig/cron/v3 v3.0.1 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/crypto v0.56.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
)
