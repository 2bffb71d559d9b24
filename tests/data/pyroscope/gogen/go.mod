module aperture/pyroscopegen

go 1.19
