package main

func handshakeCases() []*benchCase { return nil }

func handshakeRoles() map[string]childFunc { return nil }

func liveCases() []*benchCase { return nil }

func liveRoles() map[string]childFunc { return nil }
