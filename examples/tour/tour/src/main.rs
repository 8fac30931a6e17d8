fn main() {
    let stops = [tour_core::Stop { name: "registry" }, tour_core::Stop { name: "release" }];
    println!("{}", tour_render::render(&stops));
}
