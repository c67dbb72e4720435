package main

func qemuCases() []*benchCase { return nil }

func qemuRoles() map[string]childFunc { return nil }
