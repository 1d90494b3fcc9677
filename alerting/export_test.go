package alerting

// ImplicitTLS makes an email notifier speak TLS from the first byte, as it does on port
// 465, on the free port a test server got.
func ImplicitTLS(n Notifier) {
	n.(*Email).implicit = true
}
