package alerting

import "net/smtp"

// ImplicitTLS makes an email notifier speak TLS from the first byte, as it does on port
// 465, on the free port a test server got.
func ImplicitTLS(n Notifier) {
	n.(*Email).implicit = true
}

// LoginAuth is the AUTH LOGIN client an email notifier uses when the server offers LOGIN
// without PLAIN.
func LoginAuth(user, password string) smtp.Auth { return &loginAuth{user: user, password: password} }
