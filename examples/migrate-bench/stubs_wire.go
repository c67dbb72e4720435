package main

const pageSize = 4096

func wireCases() []*benchCase { return nil }

func wireRoles() map[string]childFunc { return nil }
