admin {
}
