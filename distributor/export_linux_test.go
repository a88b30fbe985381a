package distributor

// SmallDisk mounts a tmpfs of size ("3m") for the test, as root (else the
// test is skipped), and returns its path.
var SmallDisk = smallDisk
