fn main() {
    eprintln!("ensemble-sim: being written");
    std::process::exit(2);
}
