module github.com/livemig/livemig

go 1.26.0

require (
	github.com/hashicorp/go-multierror v1.1.1
	github.com/pion/dtls/v2 v2.2.12
	github.com/pion/logging v0.2.2
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.49.0
)

require (
	github.com/hashicorp/errwrap v1.0.0 // indirect
	github.com/pion/transport/v2 v2.2.4 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
)
